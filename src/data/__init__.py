"""Data sources: truths (`torch.distributions.Distribution`) and the datamodules that draw from them.

A datamodule declares `support` ("continuous" or "discrete") and `event_shape`, and `truth`
(None for real data without an oracle).
"""
