"""The framework's floor: a FastAPI endpoint that only decodes and resizes the upload.

Issue 4 gives its figures for scale (p50 0.8 ms, 1,300 requests/s at 32
connections on the 2-core machine). ``bench.http_bench`` measures it in the
same run as the service, so the comparison is made under the same conditions.
Not part of the service.
"""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import FastAPI, File, UploadFile
from PIL import Image

app = FastAPI()


@app.post("/predict")
async def predict(file: Annotated[UploadFile, File()]) -> dict[str, int]:
    image = Image.open(io.BytesIO(await file.read())).resize((32, 32))
    return {"width": image.width}


@app.post("/predict/batch")
async def predict_batch(files: Annotated[list[UploadFile], File()]) -> dict[str, int]:
    for upload in files:
        Image.open(io.BytesIO(await upload.read())).resize((32, 32))
    return {"count": len(files)}
