"""Reference solutions of the assignments and the scripts that train their checkpoints."""
