"""The reference risk model: one feature pass for the rules scorer and the LightGBM model, training with a time
split and calibration, the model card, and the scoring server."""
