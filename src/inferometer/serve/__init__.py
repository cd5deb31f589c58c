"""Serving: the Open Inference Protocol (KServe v2) over HTTP and gRPC, on the load tests'
instance pool (server), its tensors (protocol), one served model (model)."""
