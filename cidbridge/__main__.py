from cidbridge.cli.main import main

main()
