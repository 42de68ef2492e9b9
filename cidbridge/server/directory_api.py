"""The panel's API beyond call events: caller cards, the phonebook, missed calls, blocking.

Every route needs what ``refusal(request)`` lets in (the same check as the rest of
``/api``: :mod:`cidbridge.server.auth`; with the panel's session cookie, from the
daemon's own pages only).  Bodies are JSON (``Content-Type: application/json``, at most
:data:`~cidbridge.server.security.MAX_HTTP_BODY` bytes), except a contacts import
(CSV or vCard, at most :data:`IMPORT_LIMIT`).  Errors are ``{"error": "...",
"problems": {field: "..."}}`` with 400 (bad JSON or query), 401 (token), 404 (no
such contact, call or rule), 413 (too large), 415 (wrong content type), 422 (invalid
fields), 503 (the call log cannot be written); never a 500.

Changes are saved at once and announced to every panel (:meth:`Hub.announce`:
Socket.IO ``cti-directory``, and ``cti-directory`` messages on ``/api/stream``).  The
routes, the JSON they take and give, and the announcements are in the README ("The
panel's API").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cidbridge import numbers, open_url
from cidbridge.config import PanelConfig
from cidbridge.core.blocking import KINDS, BadRule, BlockRule
from cidbridge.hub import Hub
from cidbridge.phonebook import MAX_NAME, MAX_NOTE, detect_format, read_entries, write_csv
from cidbridge.server.calls_api import DIRECTORY_EVENT
from cidbridge.server.security import MAX_HTTP_BODY, BodyError, BodyTooLarge, read_capped, read_json
from cidbridge.store import StoreError
from cidbridge.store.directory import ImportResult
from cidbridge.store.timespec import TimeSpecError, parse_time

#: Largest contacts file an import takes (about 20,000 contacts).
IMPORT_LIMIT = 2_000_000
_IMPORT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "text/vcard": "vcard",
    "text/x-vcard": "vcard",
    "text/directory": "vcard",
}
_MAX_NUMBER = 40
_MAX_ID = 100


class ApiError(Exception):
    """Becomes a JSON error answer."""

    def __init__(self, status: int, message: str, problems: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems


class DirectoryApi:
    """The routes (see the module doc) over one hub; ``panel`` gives the live ``[panel]`` config."""

    def __init__(
        self,
        hub: Hub,
        *,
        refusal: Callable[[Request], Response | None],
        panel: Callable[[], PanelConfig],
        event_name: Callable[[], str] = lambda: "cti-event",
    ) -> None:
        self.hub = hub
        self.directory = hub.directory
        self.refusal = refusal
        self.panel = panel
        self.event_name = event_name
        guard = self._guard
        self.routes = [
            Route("/api/panel-config", guard(self.panel_config)),
            Route("/api/callers/{number}", guard(self.card)),
            Route("/api/contacts", guard(self.contacts)),
            Route("/api/contacts.csv", guard(self.contacts_csv)),
            Route("/api/contacts/import", guard(self.import_contacts), methods=["POST"]),
            Route("/api/contacts/{number}", guard(self.save_contact), methods=["PUT"]),
            Route("/api/contacts/{number}", guard(self.delete_contact), methods=["DELETE"]),
            Route("/api/missed", guard(self.missed)),
            Route("/api/missed/returned", guard(self.returned), methods=["POST"]),
            Route("/api/blocks", guard(self.blocks)),
            Route("/api/blocks", guard(self.add_block), methods=["POST"]),
            Route("/api/blocks/{rule_id}", guard(self.remove_block), methods=["DELETE"]),
        ]

    def _guard(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            refused = self.refusal(request)
            if refused is not None:
                return refused
            try:
                self.hub.sync_phonebook()  # what a panel reads includes the file's latest rows
                return await handler(request)
            except ApiError as exc:
                return _error(exc.status, str(exc), exc.problems)
            except StoreError as exc:
                return _error(503, str(exc))

        guarded.__name__ = handler.__name__
        return guarded

    @property
    def region(self) -> str:
        return self.hub.region

    # -- panel config and caller cards ---------------------------------------------

    async def panel_config(self, request: Request) -> Response:
        panel = self.panel()
        return JSONResponse(
            {
                "open_url": panel.open_url or None,
                "unknown_is_missed": panel.unknown_is_missed,
                "missed_days": panel.missed_days,
                "region": self.region,
                "events": {"call": self.event_name(), "directory": DIRECTORY_EVENT},
            }
        )

    async def card(self, request: Request) -> Response:
        number = _number(request.path_params["number"])
        key = self.directory.key(number)
        if key is None:
            raise ApiError(422, f"{number!r} is not a phone number", {"number": "not a phone number"})
        current = request.query_params.get("call_id")
        if current is not None and len(current) > _MAX_ID:
            raise ApiError(400, f"call_id must be at most {_MAX_ID} characters")
        contact = self.directory.contact(key)
        history = self.directory.history(key, current=current, missed_days=self.panel().missed_days)
        network_name = history.pop("network_name")
        name = (contact.name if contact else None) or network_name
        display = numbers.display(number, self.region)
        e164 = numbers.e164(number, self.region)
        rule = self.directory.block_list().match(
            self.directory.caller_view(number, None, known=contact is not None)
        )
        values = {"e164": e164, "number": number, "display": display, "name": name}
        return JSONResponse(
            {
                "key": key,
                "number": number,
                "display": display,
                "e164": e164,
                "name": name,
                "network_name": network_name,
                "contact": contact.as_json(self.region) if contact else None,
                "history": history,
                "blocked": self._rule_json(rule) if rule else None,
                "open_url": open_url.render(self.panel().open_url, values),
            }
        )

    # -- contacts ----------------------------------------------------------------------

    async def contacts(self, request: Request) -> Response:
        search = request.query_params.get("q")
        if search is not None and len(search) > 100:
            raise ApiError(400, "q must be at most 100 characters")
        limit = min(_int(request, "limit", 100), 1000)
        offset = _int(request, "offset", 0)
        found = self.directory.contacts(search, limit=limit, offset=offset)
        return JSONResponse(
            {
                "contacts": [c.as_json(self.region) for c in found],
                "total": self.directory.count_contacts(),
                "next_offset": offset + len(found) if len(found) == limit and limit > 0 else None,
            }
        )

    async def contacts_csv(self, request: Request) -> Response:
        rows = [(c.number, c.name, c.note) for c in self.directory.contacts(limit=1_000_000)]
        body = "\ufeff" + write_csv(rows)
        return Response(
            body.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="contacts-{datetime.now():%Y%m%d}.csv"'},
        )

    async def import_contacts(self, request: Request) -> Response:
        kind = _content_type(request)
        if kind not in _IMPORT_TYPES and kind != "application/octet-stream":
            raise ApiError(415, f"send the file as text/csv or text/vcard, not {kind or 'no content type'}")
        raw = await _read(request, IMPORT_LIMIT)
        fmt = _IMPORT_TYPES.get(kind) or detect_format(raw)
        read = await asyncio.to_thread(read_entries, raw, fmt, "the uploaded file")
        result = ImportResult(skipped=list(read.skipped))
        for start in range(0, len(read.entries), 500):
            part = self.directory.import_entries(read.entries[start : start + 500], source="import")
            result.added += part.added
            result.updated += part.updated
            result.unchanged += part.unchanged
            result.skipped += part.skipped
            await asyncio.sleep(0)  # a call arriving meanwhile is not held up
        answer = result.as_json()
        answer["skipped"] = answer["skipped"][:100]
        if result.added or result.updated:
            await self.hub.announce({"type": "contacts", "added": result.added, "updated": result.updated})
        return JSONResponse(answer)

    async def save_contact(self, request: Request) -> Response:
        number = _number(request.path_params["number"])
        body = await _json(request, {"name", "note"})
        problems = {}
        for field, limit in (("name", MAX_NAME), ("note", MAX_NOTE)):
            value = body.get(field)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                problems[field] = f"must be text of at most {limit} characters, or null"
        if problems:
            raise ApiError(
                422, "invalid contact: " + "; ".join(f"{k}: {v}" for k, v in problems.items()), problems
            )
        if self.directory.key(number) is None:
            raise ApiError(422, f"{number!r} is not a phone number", {"number": "not a phone number"})
        contact = self.directory.set_contact(number, body.get("name"), body.get("note"), source="panel")
        key = self.directory.key(number)
        shown = contact.as_json(self.region) if contact else None
        await self.hub.announce({"type": "contact", "key": key, "contact": shown})
        return JSONResponse({"key": key, "contact": shown})

    async def delete_contact(self, request: Request) -> Response:
        number = _number(request.path_params["number"])
        if self.directory.key(number) is None:
            raise ApiError(422, f"{number!r} is not a phone number", {"number": "not a phone number"})
        gone = self.directory.delete_contact(number)
        if gone is None:
            raise ApiError(404, f"there is no contact for {number!r}")
        await self.hub.announce({"type": "contact", "key": gone.key, "contact": None})
        return JSONResponse({"key": gone.key, "deleted": gone.as_json(self.region)})

    # -- missed calls ----------------------------------------------------------------

    async def missed(self, request: Request) -> Response:
        panel = self.panel()
        raw_since = request.query_params.get("since")
        try:
            since = parse_time(raw_since) if raw_since else time.time() - panel.missed_days * 86_400.0
        except TimeSpecError as exc:
            raise ApiError(400, f"since: {exc}") from None
        unknown = request.query_params.get("unknown")
        if unknown not in (None, "", "0", "1", "true", "false"):
            raise ApiError(400, "unknown must be 1 or 0")
        include = panel.unknown_is_missed if unknown in (None, "") else unknown in ("1", "true")
        limit = min(_int(request, "limit", 200), 500)
        entries = self.directory.missed(since=since, include_unknown=include, limit=limit)
        for entry in entries:
            entry.pop("first_event", None)
        return JSONResponse(
            {
                "missed": entries,
                "since": datetime.fromtimestamp(since).astimezone().isoformat(timespec="seconds"),
                "unknown_is_missed": include,
            }
        )

    async def returned(self, request: Request) -> Response:
        body = await _json(request, {"call_id"})
        call_id = body.get("call_id")
        if not isinstance(call_id, str) or not call_id or len(call_id) > _MAX_ID:
            raise ApiError(422, "call_id is required (a call's id)", {"call_id": "required"})
        marked = self.directory.mark_returned(call_id)
        if marked is None:
            raise ApiError(404, f"there is no call {call_id!r}")
        if marked:
            await self.hub.announce({"type": "missed", "returned": marked, "how": "called_back"})
        return JSONResponse({"returned": marked})

    # -- blocking ----------------------------------------------------------------------

    def _rule_json(self, rule: BlockRule) -> dict[str, Any]:
        shown = numbers.display(rule.value, self.region) if rule.kind == "number" else rule.value
        return {"id": rule.id, "kind": rule.kind, "value": rule.value, "display": shown, "note": rule.note}

    async def blocks(self, request: Request) -> Response:
        return JSONResponse({"blocks": [self._rule_json(rule) for rule in self.directory.blocks()]})

    async def add_block(self, request: Request) -> Response:
        body = await _json(request, {"kind", "value", "note"})
        kind, value, note = body.get("kind", "number"), body.get("value"), body.get("note")
        problems = {}
        if kind not in KINDS:
            problems["kind"] = f"must be one of {', '.join(KINDS)}"
        if not isinstance(value, str) or not value.strip() or len(value) > _MAX_NUMBER:
            problems["value"] = f"must be text of 1-{_MAX_NUMBER} characters"
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NAME):
            problems["note"] = f"must be text of at most {MAX_NAME} characters, or null"
        if problems:
            raise ApiError(
                422, "invalid rule: " + "; ".join(f"{k}: {v}" for k, v in problems.items()), problems
            )
        try:
            rule, created = self.directory.add_block(kind, value, note)
        except BadRule as exc:
            raise ApiError(422, str(exc), {"value": str(exc)}) from None
        shown = self._rule_json(rule)
        if created:
            await self.hub.announce({"type": "blocks", "added": shown, "removed": None})
        return JSONResponse({"block": shown, "created": created}, status_code=201 if created else 200)

    async def remove_block(self, request: Request) -> Response:
        raw = request.path_params["rule_id"]
        if not raw.isdigit() or len(raw) > 18:
            raise ApiError(404, f"there is no block rule {raw!r}")
        rule = self.directory.remove_block(int(raw))
        if rule is None:
            raise ApiError(404, f"there is no block rule {raw}")
        shown = self._rule_json(rule)
        await self.hub.announce({"type": "blocks", "added": None, "removed": shown})
        return JSONResponse({"block": shown})


# -- helpers -------------------------------------------------------------------------


def _error(status: int, message: str, problems: dict[str, str] | None = None) -> Response:
    answer: dict[str, Any] = {"error": message}
    if problems:
        answer["problems"] = problems
    return JSONResponse(answer, status_code=status)


def _number(raw: str) -> str:
    number = raw.strip()
    if not number or len(number) > _MAX_NUMBER or not number.isprintable():
        raise ApiError(422, f"a phone number is 1-{_MAX_NUMBER} characters", {"number": "not a phone number"})
    return number


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:  # "²".isdigit() is true
        raise ApiError(400, f"{name} must be a non-negative integer, not {raw[:20]!r}")
    return int(raw)


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read(request: Request, limit: int) -> bytes:
    try:
        return await read_capped(request, limit)
    except BodyTooLarge as exc:
        raise ApiError(413, str(exc)) from None


async def _json(request: Request, fields: set[str]) -> dict[str, Any]:
    """The request's JSON object body; only ``fields`` allowed."""
    try:
        body = await read_json(request, MAX_HTTP_BODY)  # type, size, time, nesting: 4xx
    except BodyError as exc:
        raise ApiError(exc.status, str(exc)) from None
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object")
    unknown = {
        key: f"unknown field; expected some of: {', '.join(sorted(fields))}"
        for key in body
        if key not in fields
    }
    if unknown:
        raise ApiError(422, "unknown field(s): " + ", ".join(sorted(unknown)), unknown)
    return body
