"""Dependencies injected into routes: the engine built once in the app's lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from adaptive_rag.api.admission import Admission
from adaptive_rag.pipeline import Engine


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def get_admission(request: Request):
    return request.app.state.admission


AdmissionDep = Annotated[Admission, Depends(get_admission)]
