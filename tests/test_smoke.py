def test_create_and_show(cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned")
    data = cli.json("show", "web1")
    assert data["identity"]["type"] == "SystemAssigned"
