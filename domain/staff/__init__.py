"""Staff: employees, teams and team membership."""
