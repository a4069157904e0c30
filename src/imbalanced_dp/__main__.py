from imbalanced_dp.cli import main

if __name__ == "__main__":
    main()
