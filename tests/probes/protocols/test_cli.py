"""wsprobe probe --protocol NAME against a real server."""

from __future__ import annotations

import json

import pytest

from agent.cli.main import main

pytestmark = pytest.mark.usefixtures("restore_logging")


def test_protocol_flag_speaks_socketio(
    socketio_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """--protocol socketio dials the Engine.IO URL and times the protocol phase."""
    code = main(["probe", f"ws://127.0.0.1:{socketio_port}", "--protocol", "socketio", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out["message"]
    assert out["phases"]["protocol"] > 0


def test_unknown_protocol_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --protocol names the flag and the known protocols."""
    code = main(["probe", "ws://127.0.0.1:9", "--protocol", "amqp"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--protocol: unknown protocol 'amqp' (known: graphql-transport-ws, mqtt," in err
