"""How a density model is fitted, chosen with `fit=`: maximum likelihood by gradient descent
(`mle`), or closed-form updates from summed sufficient statistics (`em`, `cavi`)."""
