def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_world_builds(world, client, factory):
    response = client.get("/api/v1/me", headers=factory.headers(world.organiser))
    assert response.status_code == 200
    assert response.json["memberships"] == [{"community_id": world.community.id, "role": "organiser"}]


def test_live_server(live_server, world, factory):
    import requests

    server = live_server(workers=2)
    response = requests.get(f"{server.url}/api/v1/me", headers=factory.headers(world.volunteer))
    assert response.status_code == 200, response.text
