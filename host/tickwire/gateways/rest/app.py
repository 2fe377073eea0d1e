"""The retail REST/WebSocket API (FastAPI), shaped like Alpaca's Trading API.

The app serves a broker object it is given (``tickwire.broker.service.Broker`` in the
product; this package does not import it): ``submit``, ``replace``, ``order``, ``order_by_client_id``,
``list_orders``, ``cancel``, ``positions``, ``account_summary``, ``accounts.authenticate``,
``book.get`` (the NBBO), ``stream`` and ``routing_log``. Every route but the login needs
``Authorization: Bearer <JWT>`` and counts towards the user's rate limit; refusals are
``{"code", "reason", "message"}`` with the HTTP status of :data:`STATUS`.
"""

import asyncio
import json
import logging
import time

from fastapi import Depends, FastAPI, Query, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect
from tickwire.core.retail import ErrorCode, RetailError
from tickwire.gateways.rest.auth import TokenError, TokenIssuer
from tickwire.gateways.rest.ratelimit import RateLimiter
from tickwire.gateways.rest.schemas import (
    AccountOut,
    ErrorOut,
    LoginBody,
    NbboOut,
    OrderBody,
    OrderOut,
    PositionOut,
    ReplaceBody,
    TokenOut,
)
from tickwire.gateways.rest.views import account_json, nbbo_json, order_json, position_json
from tickwire.util.clock import iso_time

__all__ = ["STATUS", "STREAM_CLOSE_ERROR", "STREAM_CLOSE_SLOW", "create_app"]

STATUS = {
    ErrorCode.INVALID: 422, ErrorCode.UNKNOWN_SYMBOL: 422, ErrorCode.NOT_CANCELABLE: 422,
    ErrorCode.NOT_REPLACEABLE: 422,
    ErrorCode.INSUFFICIENT_BUYING_POWER: 403, ErrorCode.INSUFFICIENT_QTY: 403,
    ErrorCode.RESTRICTED: 403, ErrorCode.HALTED: 403, ErrorCode.MARKET_CLOSED: 403,
    ErrorCode.ACCOUNT_BLOCKED: 403, ErrorCode.RISK: 403, ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409, ErrorCode.NO_ROUTE: 503,
}
"""HTTP status of each refusal."""

STREAM_CLOSE_SLOW = 1008
"""WebSocket close code for a client that stopped reading (policy violation)."""
STREAM_CLOSE_ERROR = 1011
"""WebSocket close code when the server cannot go on sending (internal error)."""

log = logging.getLogger(__name__)

_ERRORS = {status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 422, 429, 503)}


LOGIN_PATH = "/v2/auth/login"


def _error(status, reason, message, headers=None):
    return JSONResponse({"code": status * 100000 + 10000, "reason": reason, "message": message},
                        status, headers=headers)


class _Refused(Exception):
    def __init__(self, status, reason, message, headers=None):
        self.status, self.reason, self.message, self.headers = status, reason, message, headers


def create_app(broker, issuer=None, limiter=None):
    """The ASGI app for ``broker``.

    Parameters
    ----------
    broker : Broker
    issuer : TokenIssuer, optional
    limiter : RateLimiter, optional
    """
    issuer = issuer or TokenIssuer()
    limiter = limiter or RateLimiter()
    app = FastAPI(title="tickwire broker API", version="0.1.0",
                  description="Retail trading API shaped like Alpaca's Trading API: orders are "
                  "routed to the best venue by the NBBO. Money is decimal strings in dollars.")
    app.state.broker, app.state.issuer, app.state.limiter = broker, issuer, limiter
    bearer = HTTPBearer(auto_error=False)

    @app.exception_handler(_Refused)
    async def refused(request, exc):
        return _error(exc.status, exc.reason, exc.message, exc.headers)

    @app.exception_handler(RetailError)
    async def retail_error(request, exc):
        return _error(STATUS[exc.code], exc.code.value, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        # FastAPI parses the body before it runs the dependencies: a caller without a valid
        # token learns that it is refused, not what its body got wrong.
        if request.url.path != LOGIN_PATH:
            try:
                authenticate(request.headers.get("authorization"))
            except _Refused as refused_:
                return _error(refused_.status, refused_.reason, refused_.message,
                              refused_.headers)
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "malformed_json", "the body is not valid JSON")
        text = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
                         for e in errors)
        return _error(422, ErrorCode.INVALID.value, text)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette's Allow names one route's methods; a path may have several routes.
            allowed = {m for r in app.router.routes if getattr(r, "methods", None)
                       and r.path_regex.match(request.url.path) for m in r.methods}
            headers = {"Allow": ", ".join(sorted(allowed))}
        return _error(exc.status_code, "http_error", str(exc.detail), headers)

    def _known_query(request):
        """Refuse query parameters the route does not take (a misspelt one is not ignored),
        as its OpenAPI operation lists them."""
        operation = app.openapi()["paths"][request.scope["route"].path_format][
            request.method.lower()]
        known = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"}
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise _Refused(422, ErrorCode.INVALID.value,
                           f"unknown query parameter(s): {', '.join(map(repr, unknown))}")

    def authenticate(authorization):
        """The user an ``Authorization: Bearer`` header value names, or a 401 refusal."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Refused(401, "unauthorized", "Authorization: Bearer <token> is required",
                           {"WWW-Authenticate": "Bearer"})
        try:
            user = issuer.verify(token)
        except TokenError as exc:
            raise _Refused(401, "unauthorized", str(exc),
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        if user not in broker.accounts.accounts:
            raise _Refused(401, "unauthorized", "the token's user does not exist")
        return user

    def user_of(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(
                bearer), response: Response = None):
        # ``credentials`` declares the bearer scheme in the OpenAPI document; the header is read
        # by ``authenticate``, which the validation handler shares.
        user = authenticate(request.headers.get("authorization"))
        _known_query(request)
        allowed, remaining, retry = limiter.hit(user)
        if not allowed:
            raise _Refused(429, "rate_limited",
                           f"more than {limiter.per_minute} requests in a minute",
                           {"Retry-After": str(retry), "X-RateLimit-Limit": str(
                               limiter.per_minute), "X-RateLimit-Remaining": "0"})
        response.headers["X-RateLimit-Limit"] = str(limiter.per_minute)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        return user

    @app.post(LOGIN_PATH, response_model=TokenOut, responses=_ERRORS, tags=["auth"])
    async def login(body: LoginBody):
        """Exchange a username and password for a bearer token (a JWT with an expiry)."""
        account = await asyncio.to_thread(broker.accounts.authenticate, body.username,
                                          body.password)
        if account is None:
            raise _Refused(401, "unauthorized", "wrong username or password")
        token, expires = issuer.issue(account.user)
        return {"token": token, "expires_at": iso_time(expires * 10**9)}

    @app.post("/v2/orders", response_model=OrderOut, responses=_ERRORS, tags=["orders"])
    async def create_order(body: OrderBody, user: str = Depends(user_of)):
        """Place an order. A retried ``client_order_id`` returns the same order; the same id
        with a different body is refused with 409."""
        order = broker.submit(user, body.request(), received_ns=time.time_ns())
        return order_json(order.snapshot())

    @app.get("/v2/orders", response_model=list[OrderOut], responses=_ERRORS, tags=["orders"])
    async def list_orders(status: str = Query("open", pattern="^(open|closed|all)$"),
                          limit: int = Query(50, ge=1, le=500), user: str = Depends(user_of)):
        """The user's orders, newest first."""
        return [order_json(o.snapshot()) for o in broker.list_orders(user, status, limit)]

    @app.get("/v2/orders:by_client_order_id", response_model=OrderOut, responses=_ERRORS,
             tags=["orders"])
    async def order_by_client_id(client_order_id: str = Query(min_length=1, max_length=128),
                                 user: str = Depends(user_of)):
        return order_json(broker.order_by_client_id(user, client_order_id).snapshot())

    @app.get("/v2/orders/{order_id}", response_model=OrderOut, responses=_ERRORS,
             tags=["orders"])
    async def get_order(order_id: str, user: str = Depends(user_of)):
        return order_json(broker.order(user, order_id).snapshot())

    @app.patch("/v2/orders/{order_id}", response_model=OrderOut, responses=_ERRORS,
               tags=["orders"])
    async def replace_order(order_id: str, body: ReplaceBody, user: str = Depends(user_of)):
        """Replace an open order: the answer is the new order (``replaces`` names the old
        one). The stream then says ``replaced`` and ``new``, or ``order_replace_rejected``
        and ``rejected`` if the old order was filled first. A retry returns the same order."""
        order = broker.replace(user, order_id, body.request(), received_ns=time.time_ns())
        return order_json(order.snapshot())

    @app.delete("/v2/orders/{order_id}", status_code=204, responses=_ERRORS, tags=["orders"])
    async def cancel_order(order_id: str, user: str = Depends(user_of)):
        """Ask for what is left of an open order to be canceled (``canceled`` on the stream
        when the venues confirm)."""
        broker.cancel(user, order_id)
        return Response(status_code=204)

    @app.get("/v2/orders/{order_id}/audit", responses=_ERRORS, tags=["orders"])
    async def order_audit(order_id: str, user: str = Depends(user_of)) -> list[dict]:
        """The order's audit records, each step of its journey (tickwire extension)."""
        return broker.order(user, order_id).audit

    @app.get("/v2/positions", response_model=list[PositionOut], responses=_ERRORS,
             tags=["account"])
    async def positions(user: str = Depends(user_of)):
        return [position_json(p) for p in broker.positions(user)]

    @app.get("/v2/account", response_model=AccountOut, responses=_ERRORS, tags=["account"])
    async def account(user: str = Depends(user_of)):
        return account_json(broker.account_summary(user))

    @app.get("/v2/nbbo/{symbol}", response_model=NbboOut, responses=_ERRORS,
             tags=["market data"])
    async def nbbo(symbol: str, user: str = Depends(user_of)):
        """The national best bid and offer across the venues, with the venue of each side."""
        quote = broker.book.get(symbol)
        if quote is None:
            raise _Refused(404, ErrorCode.UNKNOWN_SYMBOL.value, f"no venue quotes {symbol!r}")
        return nbbo_json(quote)

    @app.get("/v2/reports/rule606", responses=_ERRORS, tags=["reports"])
    async def rule606(user: str = Depends(user_of)) -> dict:
        """Where the broker routed orders (Rule 606-style) and its routing quality."""
        return {"routing": broker.routing_log.rule606(),
                "quality": broker.routing_log.quality()}

    @app.websocket("/v2/stream")
    async def stream(websocket: WebSocket, from_seq: int | None = None):
        """Order updates: ``{"seq", "event", "order"}``; ``from_seq=N`` replays from N."""
        header = websocket.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise TokenError("Authorization: Bearer <token> is required")
            user = issuer.verify(token)
        except TokenError as exc:
            await websocket.send_denial_response(_error(401, "unauthorized", str(exc)))
            return
        if from_seq is not None and from_seq < 1:
            await websocket.send_denial_response(
                _error(422, ErrorCode.INVALID.value, "from_seq counts from 1"))
            return
        await websocket.accept()
        await _serve_stream(websocket, broker.stream, user, from_seq)

    return app


async def _serve_stream(websocket, stream, user, from_seq):
    listener = stream.subscribe(user, from_seq)

    async def pump():
        while True:
            event = await listener.queue.get()
            await websocket.send_text(json.dumps(
                {"seq": event["seq"], "event": event["event"],
                 "order": order_json(event["order"])}))

    async def receive():
        try:
            while True:
                await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            return

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(receive()),
             asyncio.ensure_future(listener.gone.wait())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        stream.unsubscribe(user, listener)
    failed = tasks[0].exception() if tasks[0].done() and not tasks[0].cancelled() else None
    if failed is not None and not isinstance(failed, (WebSocketDisconnect, OSError)):
        # not the client going away: a bug in what the stream sends; say so, close 1011
        log.error("order stream of %s failed: %r", user, failed)
        try:
            await asyncio.wait_for(websocket.close(STREAM_CLOSE_ERROR, "internal error"), 1.0)
        except (TimeoutError, RuntimeError, OSError):
            pass
        return
    if listener.overflowed:
        try:
            await asyncio.wait_for(websocket.close(
                STREAM_CLOSE_SLOW, "client is not reading its order updates"), 1.0)
        except (TimeoutError, RuntimeError, OSError):
            pass
