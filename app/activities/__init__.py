"""Volunteer activities (志愿服务参与): sign-up, QR check-in, completion, service hours."""
