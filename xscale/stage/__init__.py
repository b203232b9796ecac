"""4. One stage: its context, dispatch, pretrain and finetune bodies, evaluation, preflight."""
