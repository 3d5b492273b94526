"""The command-line programs: `mtcae-train`, `mtcae-evaluate`, `mtcae-predict`,
`mtcae-pretrain`, `mtcae-cross-validate` (also `python train.py ...` in a clone), and the
local web page `mtcae-demo-app` (`python -m mtcae_keras.cli.demo_app`)."""
