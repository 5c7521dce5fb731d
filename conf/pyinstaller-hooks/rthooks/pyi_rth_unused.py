# Intentionally empty: see ../rthooks.dat.
