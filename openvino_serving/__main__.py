"""``python -m openvino_serving``: uvicorn with host, port, workers and threads from the environment."""

from openvino_serving.settings import OpenVinoServingSettings
from serving_core.server import serve

if __name__ == "__main__":
    serve("openvino_serving.app:app", OpenVinoServingSettings())
