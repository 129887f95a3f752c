from guitarlab.cli import main

main()
