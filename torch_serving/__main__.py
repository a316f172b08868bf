"""``python -m torch_serving``: uvicorn with host, port, workers and threads from the environment."""

from serving_core.server import serve
from torch_serving.settings import TorchServingSettings

if __name__ == "__main__":
    serve("torch_serving.app:app", TorchServingSettings())
