from lesionres.cli import main

main()
