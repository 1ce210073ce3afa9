"""A real SMTP server for tests (aiosmtpd, in a thread): every message it accepts is kept."""

from __future__ import annotations

import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self) -> None:
        self.messages: list[str] = []  # the raw text of each message, as received

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's naming)
        self.messages.append(envelope.content.decode("utf-8", "replace").replace("\r\n", "\n"))
        return "250 queued"


class MailServer:
    def __init__(self) -> None:
        self._handler = _Keep()
        # a free port picked first: the controller checks it is up by connecting to the port it was given
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=free)

    def start(self) -> "MailServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def server_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def messages(self) -> list[str]:
        return self._handler.messages

    def parsed(self) -> list[email.message.EmailMessage]:
        return [email.message_from_string(m, policy=email.policy.default) for m in self.messages]


@pytest.fixture
def smtp_server():
    server = MailServer().start()
    yield server
    server.stop()
