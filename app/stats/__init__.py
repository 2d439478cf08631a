"""The numbers a community runs on: statistics, 红黄蓝 board ratings, the dashboard's charts."""
