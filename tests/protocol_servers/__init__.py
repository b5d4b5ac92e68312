"""Launchers of real protocol servers (Socket.IO, GraphQL, Mosquitto, RabbitMQ) for tests."""
