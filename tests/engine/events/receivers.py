"""Local stand-ins for the vendors: each checks signature and payload as its vendor documents them and answers
like the vendor (HTTP 200 with an error code when it refuses). Written from the vendors' documentation, not
from ecomflow's code, so a wrong signature or shape in ecomflow fails here.

- DingTalk custom robot: open.dingtalk.com/document/robots/custom-robot-access (加签, markdown, at, errcode).
- WeCom group robot: developer.work.weixin.qq.com/document/path/91770 (key, markdown/text, errcode).
- Feishu custom bot: open.feishu.cn/document/client-docs/bot-v3/add-custom-bot (签名校验, post, code).
- SMTP: aiosmtpd, requiring STARTTLS before AUTH, with a self-signed certificate made per test session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOUR_MS = 3600 * 1000


@dataclass
class Arrival:
    """One request as a receiver saw it, and what it answered."""

    path: str
    query: dict[str, list[str]]
    raw_query: str
    body: dict[str, Any]
    answer: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return self.answer.get("errcode", self.answer.get("code")) == 0


@dataclass
class Receiver:
    """A vendor's robot endpoint on 127.0.0.1: `url` is what its settings page would show."""

    secret: str
    check: Callable[[Receiver, str, dict[str, list[str]], str, dict[str, Any]], dict[str, Any]]
    url: str = ""
    arrivals: list[Arrival] = field(default_factory=list)
    # Real send times, for the vendor's own rate limit.
    sent_at: list[float] = field(default_factory=list)

    def accepted(self) -> list[Arrival]:
        return [arrival for arrival in self.arrivals if arrival.accepted]

    def handle(self, path: str, raw_query: str, raw_body: bytes) -> dict[str, Any]:
        query = parse_qs(raw_query, keep_blank_values=True)
        body = json.loads(raw_body)
        answer = self.check(self, path, query, raw_query, body)
        self.arrivals.append(Arrival(path, query, raw_query, body, answer))
        return answer


def start_http_receiver(receiver: Receiver, path: str) -> ThreadingHTTPServer:
    """Serve the receiver on a free port; its `url` gets the path (and query) the vendor would give out."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answer = json.dumps(receiver.handle(parts.path, parts.query, raw)).encode()
            # The vendors answer refusals with HTTP 200 and an error code in the body.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}{path}"
    threading.Thread(target=server.serve_forever, name="vendor-receiver", daemon=True).start()
    return server


def _rate_exceeded(receiver: Receiver, *, limit: int, span: float) -> bool:
    now = time.monotonic()
    receiver.sent_at = [moment for moment in receiver.sent_at if moment > now - span]
    receiver.sent_at.append(now)
    return len(receiver.sent_at) > limit


# ── DingTalk ─────────────────────────────────────────────────────────────────────
DINGTALK_TOKEN = "dt-access-token-0123456789"


def check_dingtalk(receiver: Receiver, path: str, query: dict, raw_query: str, body: dict) -> dict[str, Any]:
    """Verify a DingTalk custom robot request; answer {"errcode", "errmsg"} as DingTalk does."""
    if path != "/robot/send" or query.get("access_token") != [DINGTALK_TOKEN]:
        return {"errcode": 300001, "errmsg": "token is not exist"}
    timestamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
    raw_sign = next((part.split("=", 1)[1] for part in raw_query.split("&") if part.startswith("sign=")), "")
    string_to_sign = f"{timestamp}\n{receiver.secret}".encode()
    expected = base64.b64encode(hmac.new(receiver.secret.encode(), string_to_sign, hashlib.sha256).digest()).decode()
    fresh = timestamp.isdigit() and abs(time.time() * 1000 - int(timestamp)) < HOUR_MS
    # URL-encoded: Base64's "+", "/" and "=" travel percent-encoded.
    encoded = not set(raw_sign) & set("+/=") and unquote(raw_sign) == sign
    if not (fresh and encoded and hmac.compare_digest(sign, expected)):
        return {
            "errcode": 310000,
            "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
        }
    if _rate_exceeded(receiver, limit=20, span=60):
        return {"errcode": 410100, "errmsg": "send too fast, exceed 20 times per minute"}
    markdown, at = body.get("markdown", {}), body.get("at", {})
    shape_ok = (
        body.get("msgtype") == "markdown"
        and isinstance(markdown.get("title"), str)
        and markdown["title"]
        and isinstance(markdown.get("text"), str)
        and all(f"@{mobile}" in markdown["text"] for mobile in at.get("atMobiles", []))
        and all(f"@{user_id}" in markdown["text"] for user_id in at.get("atUserIds", []))
    )
    if not shape_ok:
        return {"errcode": 40035, "errmsg": "缺少参数 json"}
    return {"errcode": 0, "errmsg": "ok"}


# ── WeCom ────────────────────────────────────────────────────────────────────────
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


def check_wecom(receiver: Receiver, path: str, query: dict, raw_query: str, body: dict) -> dict[str, Any]:
    """Verify a WeCom group robot request; answer {"errcode", "errmsg"} as WeCom does."""
    if path != "/cgi-bin/webhook/send" or query.get("key") != [receiver.secret]:
        return {"errcode": 93000, "errmsg": "invalid webhook url, hint: [1700000000_1_abc]"}
    if _rate_exceeded(receiver, limit=20, span=60):
        return {"errcode": 45009, "errmsg": "api freq out of limit"}
    kind = body.get("msgtype")
    if kind == "markdown":
        content = body.get("markdown", {}).get("content")
        ok = isinstance(content, str) and 0 < len(content.encode()) <= 4096
    elif kind == "text":
        text = body.get("text", {})
        content = text.get("content")
        ok = (
            isinstance(content, str)
            and 0 < len(content.encode()) <= 2048
            and all(isinstance(v, list) for k, v in text.items() if k != "content")
        )
    else:
        ok = False
    return {"errcode": 0, "errmsg": "ok"} if ok else {"errcode": 40008, "errmsg": "invalid message type"}


# ── Feishu ───────────────────────────────────────────────────────────────────────
FEISHU_HOOK = "/open-apis/bot/v2/hook/0b8ef9d6-7c1a-4b38-bd5e-5b2d0aa3c1f4"


def check_feishu(receiver: Receiver, path: str, query: dict, raw_query: str, body: dict) -> dict[str, Any]:
    """Verify a Feishu custom bot request; answer {"code", "msg", "data"} as Feishu does."""
    if path != FEISHU_HOOK:
        return {"code": 19001, "msg": "param invalid: incoming webhook access token invalid", "data": {}}
    timestamp = str(body.get("timestamp", ""))
    key = f"{timestamp}\n{receiver.secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 3600
    if not (fresh and hmac.compare_digest(str(body.get("sign", "")), expected)):
        return {
            "code": 19021,
            "msg": "sign match fail or timestamp is not within one hour from current time",
            "data": {},
        }
    if _rate_exceeded(receiver, limit=100, span=60):
        return {"code": 11232, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]", "data": {}}
    post = body.get("content", {}).get("post", {})
    paragraphs = next(iter(post.values()), {}).get("content") if len(post) == 1 else None
    shape_ok = (
        body.get("msg_type") == "post"
        and set(post) <= {"zh_cn", "en_us"}
        and isinstance(paragraphs, list)
        and all(isinstance(p, list) and all(e.get("tag") in ("text", "a", "at") for e in p) for p in paragraphs)
        and len(json.dumps(body, ensure_ascii=False).encode()) <= 20 * 1024
    )
    if not shape_ok:
        return {"code": 9499, "msg": "Bad Request", "data": {}}
    return {"code": 0, "msg": "success", "data": {}}


# ── SMTP (aiosmtpd) ──────────────────────────────────────────────────────────────
@dataclass
class Mailbox:
    """What the SMTP server received, and how it was spoken to."""

    host: str
    port: int
    ca_file: Path
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls_at_data: list[bool] = field(default_factory=list)


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook name)
        self.mailbox.tls_at_data.append(session.ssl is not None)
        self.mailbox.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.mailbox.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key; return (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def start_smtp_server(directory: Path, *, user: str, password: str) -> tuple[Mailbox, Controller]:
    """Start an SMTP server that requires STARTTLS, and AUTH (only over TLS) with this user and password."""
    cert_path, key_path = make_certificate(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox(host="127.0.0.1", port=port, ca_file=cert_path)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            user.encode(),
            password.encode(),
        )
        if ok:
            mailbox.logins.append(user)
        # handled=False: the server answers the refusal itself (535), as a real one does.
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        _Handler(mailbox),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticate,
    )
    controller.start()
    return mailbox, controller
