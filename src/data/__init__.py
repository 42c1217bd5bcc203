"""Data sources: truths (`torch.distributions.Distribution`s) and datamodules drawing from them.

A datamodule exposes `support` ("continuous" or "discrete"), `event_shape`, `train_x` and
`truth` (None for real data, which has no oracle).
"""
