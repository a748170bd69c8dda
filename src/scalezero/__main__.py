from scalezero.cli import main

main()
