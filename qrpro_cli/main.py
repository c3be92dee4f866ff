"""Entry point of the `qrpro` console script."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError


def main(argv: list[str] | None = None) -> int:
    from qrpro_cli import admin
    from qrpro_cli.admin import HelpWithDefaults

    parser = argparse.ArgumentParser(prog="qrpro", description="QR Pro: local stack and admin CLI",
                                     formatter_class=HelpWithDefaults)
    sub = parser.add_subparsers(dest="command", required=True)
    local = sub.add_parser("local", help="run the whole service on this machine",
                           formatter_class=HelpWithDefaults)
    local.add_argument("--api-port", type=int, default=3000, help="port of the API (and /docs) on 127.0.0.1")
    local.add_argument("--redirect-port", type=int, default=3001, help="port of the redirects on 127.0.0.1")
    local.add_argument("--data-dir", default=".qrpro",
                       help="where data and the connection file for `qrpro admin` live")
    local.add_argument("--in-memory", action="store_true", help="keep no data across restarts")
    local.add_argument("--workers", type=int, default=2, help="containers (processes) per function at most")
    local.add_argument("--template", default=None,
                       help="run this CloudFormation template instead of the one synthesized from infra/")
    local.add_argument("--no-iam", action="store_true",
                       help="do not enforce the functions' IAM roles (debugging only: AWS always does)")

    admin.add_parser(sub)
    args = parser.parse_args(argv)

    from qrpro.data.accounts import AccountError
    from qrpro_cli.engines import StackError

    try:
        if args.command == "local":
            from qrpro_cli.local import Options, run

            return run(Options(api_port=args.api_port, redirect_port=args.redirect_port,
                               data_dir=Path(args.data_dir), in_memory=args.in_memory, workers=args.workers,
                               template=Path(args.template) if args.template else None, iam=not args.no_iam))
        admin.connect(args)
        print(json.dumps(admin.run(args)))
        return 0
    except (StackError, AccountError) as err:
        print(f"qrpro: {err}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as err:
        print(f"qrpro: AWS error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
