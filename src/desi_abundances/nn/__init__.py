"""Neural-network label transfer: the network (``network``), its loss (``loss``), the training
loop (``training``), the self-contained ``ModelBundle`` (``bundle``) and prediction with
uncertainties (``predict``). Plain torch/numpy, no Kedro."""
