import type { RepositoryRef } from "../../store/model.js";

interface PayloadRepository {
  id: number;
  name: string;
  full_name: string;
  private: boolean;
  default_branch?: string;
  master_branch?: string;
  owner?: { login?: string } | null;
}

/** The few repository fields Slipway keeps, from any webhook payload's `repository`. */
export function repositoryRefOf(repository: PayloadRepository): RepositoryRef {
  return {
    id: repository.id,
    owner: repository.owner?.login ?? repository.full_name.split("/")[0]!,
    name: repository.name,
    fullName: repository.full_name,
    defaultBranch: repository.default_branch ?? repository.master_branch ?? "main",
    private: repository.private,
  };
}
