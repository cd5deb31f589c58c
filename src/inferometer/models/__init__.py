"""Models: the zoo (architectures + deterministic weights), user ONNX files, the ONNX cache."""
