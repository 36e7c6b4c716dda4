"""`datadistill serve`: a student (torch) or an export folder (onnxruntime) behind HTTP, with micro-batching.

protocol.py  the /predict body and answer, limits, one-line errors (no web framework)
batcher.py   concurrent requests -> one forward pass in a worker thread
app.py       the FastAPI routes (/predict, /health, /info, /docs)
server.py    settings, model loading, uvicorn (one or several processes), graceful shutdown

Nothing here is imported by `datadistill --help`; fastapi and uvicorn come with `pip install 'datadistill[serve]'`.
"""
