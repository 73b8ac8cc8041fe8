"""Outgoing mail: verification codes reach people through a `Mailer`.

- `OutboxMailer` (`mail.transport = "outbox"`, the default): one RFC 5322 `.eml` file
  per message under `<state.dir>/outbox/`, written atomically (a temporary file in the
  same directory, fsynced, then renamed), named so that `ls` lists them in send order.
  For hosts without mail, and for tests.
- `SmtpMailer` (`"smtp"`): the standard library's smtplib, run in a worker thread so the
  event loop never waits on the network; plain, STARTTLS or implicit TLS, with optional
  login.

A mailer raises `MailError` when the message could not be handed over.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

import trio

from odted.config import MailConfig

__all__ = ["Mailer", "MailError", "OutboxMailer", "SmtpMailer", "build_mailer"]


class MailError(Exception):
    """The message was not sent; nothing else happened."""


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


def _message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(body)
    return msg


class OutboxMailer:
    """Writes each message to `directory` as `<UTC time>-<random>.eml`."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = Path(directory)
        self.sender = sender

    async def send(self, to: str, subject: str, body: str) -> None:
        data = bytes(_message(self.sender, to, subject, body))
        try:
            await trio.to_thread.run_sync(self._write, data)
        except OSError as e:
            raise MailError(f"cannot write to the outbox {self.directory}: {e}") from e

    def _write(self, data: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.eml"
        final = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final


class SmtpMailer:
    """Sends through an SMTP server with smtplib, in a worker thread."""

    def __init__(self, config: MailConfig) -> None:
        self.config = config

    async def send(self, to: str, subject: str, body: str) -> None:
        msg = _message(self.config.from_address, to, subject, body)
        try:
            await trio.to_thread.run_sync(self._send, msg, abandon_on_cancel=True)
        except (smtplib.SMTPException, OSError) as e:
            raise MailError(f"SMTP {self.config.smtp_host}:{self.config.smtp_port}: {e}") from e

    def _send(self, msg: EmailMessage) -> None:
        c = self.config
        if c.smtp_security == "tls":
            server: smtplib.SMTP = smtplib.SMTP_SSL(c.smtp_host, c.smtp_port, timeout=c.smtp_timeout,
                                                     context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.smtp_timeout)
        with server:
            if c.smtp_security == "starttls":
                server.starttls(context=ssl.create_default_context())
            if c.smtp_username:
                server.login(c.smtp_username, c.smtp_password)
            server.send_message(msg)


def build_mailer(config: MailConfig, state_dir: Path) -> Mailer:
    """The mailer `config` asks for."""
    if config.transport == "smtp":
        return SmtpMailer(config)
    return OutboxMailer(state_dir / "outbox", config.from_address)
