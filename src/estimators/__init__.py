"""Monte Carlo gradient estimators, reparameterized samplers, ELBO gradients and importance
sampling: pure torch, no Lightning, so each piece can be read and tested on its own."""
