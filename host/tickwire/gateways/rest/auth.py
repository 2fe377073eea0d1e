"""Bearer tokens: JWTs (HS256, PyJWT) naming the user, with an expiry."""

import secrets
import time
import uuid

import jwt

__all__ = ["DEFAULT_TTL", "TokenError", "TokenIssuer"]

DEFAULT_TTL = 3600.0
"""Seconds a token is valid."""


class TokenError(Exception):
    """A missing, malformed, forged or expired token."""


class TokenIssuer:
    """Parameters
    ----------
    secret : bytes, optional
        The HMAC key (a random one per server by default: restarting logs everyone out).
    ttl : float
        Token lifetime in seconds.
    clock : callable
        Seconds since the epoch.
    """

    ALGORITHM = "HS256"

    def __init__(self, secret=None, ttl=DEFAULT_TTL, clock=time.time):
        self.secret = secret or secrets.token_bytes(32)
        self.ttl, self.clock = ttl, clock

    def issue(self, user):
        """``(token, expires_at)``: a token for ``user``, and when it expires (epoch seconds)."""
        now = int(self.clock())
        expires = now + int(self.ttl)
        token = jwt.encode({"sub": user, "iat": now, "exp": expires, "jti": uuid.uuid4().hex},
                           self.secret, algorithm=self.ALGORITHM)
        return token, expires

    def verify(self, token):
        """The user a token names; raises TokenError if it is not valid now."""
        try:
            claims = jwt.decode(token, self.secret, algorithms=[self.ALGORITHM],
                                options={"require": ["sub", "exp", "iat"]},
                                leeway=0)
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid token ({exc})") from None
        if claims["exp"] <= self.clock():
            raise TokenError("token expired")
        return claims["sub"]
