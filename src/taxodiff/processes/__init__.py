"""Diffusion processes (gaussian.py, multinomial.py) behind one interface (base.py), and guidance rules."""
