"""Thin utilities shared by every paper: config, runs, tracking, seeding, device,
checkpoints and results. `shared` never imports a paper."""


class UserError(Exception):
    """A problem the user can fix (bad config, missing or corrupt data/checkpoint).

    The command-line entry point prints it as one line and exits with code 2.
    """
