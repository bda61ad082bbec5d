"""The names a config may choose among, importable without torch."""

SAMPLERS = ("ddpm", "ddim", "dpmsolver++")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTIONS = ("epsilon", "v_prediction")
# guidance rules (taxodiff.processes.guiders says what each is and whose code it runs)
GUIDANCE_METHODS = ("cfg", "interval", "cads", "apg", "cfg-zero-star", "tcfg", "fdg", "mambo")
GUIDANCE_SPACES = ("auto", "epsilon", "v_prediction", "sample")  # the prediction a guidance rule acts on
