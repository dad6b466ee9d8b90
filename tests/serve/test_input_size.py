from keyless.runs import Checkpoint, Run, build_model
from keyless.serve import ServedModel, create_app
from keyless.train import recipe
from tests.serve.conftest import TestClient


def test_a_run_is_served_at_the_size_it_was_trained_on(tmp_path):
    config = recipe("fast", model_kwargs={"widths": [8, 8, 8]}, seed=0)
    model = build_model(config, 3)
    Run(tmp_path).save(Checkpoint(config, 0, ["a", "b", "c"], model.state_dict(), (96, 96)))
    served = ServedModel.load(tmp_path, device="cpu")
    assert served.input_size == (96, 96) and served.describe()["input_size"] == [96, 96]
    assert ServedModel.load(tmp_path, (48, 48), device="cpu").input_size == (48, 48)
    with TestClient(create_app(tmp_path, device="cpu")) as client:
        assert client.get("/v1/model").json()["input_size"] == [96, 96]
        raw = {"Content-Type": "application/octet-stream"}
        shape = {**raw, "X-Image-Shape": "1,96,96,3"}
        answer = client.post("/v1/classify", content=bytes(96 * 96 * 3), headers=shape)
        assert answer.status_code == 200 and len(answer.json()["results"]) == 1, answer.text
        shape = {**raw, "X-Image-Shape": "1,32,32,3"}
        refused = client.post("/v1/classify", content=bytes(32 * 32 * 3), headers=shape)
        assert refused.status_code == 422 and "96" in refused.json()["detail"], refused.text
