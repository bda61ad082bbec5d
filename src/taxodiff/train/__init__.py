"""The one trainer (trainer.py) for every family, its learning-rate and batch schedules (schedule.py), and
devices, precision and multi-process runs through Accelerate (distributed.py)."""
