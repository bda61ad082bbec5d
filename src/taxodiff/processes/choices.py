"""The names a config may choose among, importable without torch."""

SAMPLERS = ("ddpm", "ddim", "dpmsolver++")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTIONS = ("epsilon", "v_prediction")
GUIDANCE_METHODS = ("cfg", "interval", "cads")
