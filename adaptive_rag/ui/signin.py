"""Sign-in for the inspector's pages: a page asked for without a valid key raises SignIn, and the
handler `install_sign_in` registers answers it with a 303 to /ui/login?next=<the page> (no data).
Kept apart from routes.py so the app can install it without importing the pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI


class SignIn(Exception):
    """The page needs a key the request did not bring: show the sign-in page (no data)."""


def install_sign_in(app: FastAPI) -> None:
    """Answer SignIn, from any route of `app`, with a redirect to the sign-in page."""
    from urllib.parse import quote

    from fastapi import Request
    from fastapi.responses import RedirectResponse

    async def sign_in(request: Request, _: SignIn):
        return RedirectResponse(f"/ui/login?next={quote(request.url.path)}", status_code=303)

    app.add_exception_handler(SignIn, sign_in)
