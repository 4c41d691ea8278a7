"""`genemask torchrun`: torchrun that keeps the exit status of a checkpointed stop.

torchrun reports any failed worker as exit 1, so a pretraining run that stopped with a checkpoint before the time
limit (exit 75, EX_TEMPFAIL) would look like a crash. This is torchrun (same options: `genemask torchrun
--standalone --nproc-per-node 8 -m genemask pretrain ...`) run in-process, mapping the outcome back:

- a worker exited 75 (every process checkpointed together, training/pretrain.py): exit 75;
- torchrun itself got SIGTERM, SIGINT or SIGUSR1 (SLURM's time limit or preemption): it passes SIGTERM to the
  workers and gives them 30 s to checkpoint and exit before SIGKILL; exit 75 (resumable: the next attempt
  continues from the newest intact checkpoint, at worst the one before);
- any other failure: torchrun's summary of the failed ranks on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import signal
import sys

from genemask.training.settings import EXIT_RESUMABLE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "torchrun",
        help=f"torchrun (its options), keeping exit {EXIT_RESUMABLE} of a checkpointed stop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,  # --help goes to torchrun's own parser
        prefix_chars="+",  # so that every "-" option is torchrun's
    )
    parser.add_argument("torchrun_args", nargs=argparse.REMAINDER, help="torchrun's arguments")
    parser.set_defaults(func=run)


def exit_status(worker_exits: list[int]) -> int:
    """The launch's exit status from its failed workers' exit codes."""
    return EXIT_RESUMABLE if EXIT_RESUMABLE in worker_exits else 1


def run(args: argparse.Namespace) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException, _terminate_process_handler
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args
    from torch.distributed.run import run as torchrun

    # SLURM may warn with SIGUSR1 (sbatch --signal); torchrun only handles SIGTERM, SIGINT, SIGHUP and SIGQUIT.
    signal.signal(signal.SIGUSR1, _terminate_process_handler)
    try:
        torchrun(parse_args(args.torchrun_args))
    except ChildFailedError as error:
        status = exit_status([failure.exitcode for failure in error.failures.values()])
        if status != EXIT_RESUMABLE:
            print(error.format_msg(), file=sys.stderr)
        return status
    except SignalException as error:
        print(f"genemask torchrun: {error.sigval.name}: the workers were told to checkpoint", file=sys.stderr)
        return EXIT_RESUMABLE
    return 0
