"""Monte Carlo studies as LightningModules: their parameters are those of a sampling
distribution, they draw their own samples (`data=none`), and they are chosen with `study=`."""
