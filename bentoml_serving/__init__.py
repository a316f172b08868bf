"""BentoML in front of onnx_serving's predictor: ``POST /predict`` with a JSON body is a BentoML API (BentoML
parses and validates the body into its input model and serialises the response model); serving_core's routes,
mounted in the same service, answer the rest of the contract.
"""
