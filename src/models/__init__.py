"""Density models: plain `torch.nn.Module`s following `src.models.protocol.DensityModel`
(`log_prob(x) -> [N]`, `sample(n)`, `support`, `event_shape`)."""
