"""LightningModules: the generic maximum-likelihood trainer and the fitting procedures that
are not gradient descent. They wrap density models; they never own their maths."""
