from kubesvc.cli.main import main

main()
