"""The trusted side: chooses inputs, runs the reference, and turns raw outputs into verdicts."""
