"""Density models: plain `torch.nn.Module`s with `log_prob(x) -> [N]` and `sample(n)`.

Each also declares `support` ("continuous" or "discrete") and `event_shape`, so a run can
refuse a model/data pairing that cannot work, and may define `init_from_data(x)`, which a
fresh run calls once with the training data before fitting.
"""
