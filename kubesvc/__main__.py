import os

if "KUBESVC_STORE_GUARD" in os.environ:  # a component started by `kubesvc up`: stop if its store goes away
    from kubesvc.dataplane.runtime import start_store_guard_from_env

    start_store_guard_from_env()

from kubesvc.cli.main import main

main()
