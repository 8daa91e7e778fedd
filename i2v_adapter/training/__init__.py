"""Training: the config (`config`), synthetic and folder video data (`data`), the objectives of each
stage (`objectives`), the accelerate loop (`train`, `python -m i2v_adapter.training.train`) and
checkpoint averaging (`average`)."""
